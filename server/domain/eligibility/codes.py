"""X12 270/271 code lists as Stedi's v3 OpenAPI pairs them (code -> name).

Typed from the spec (§2.3) and Stedi's enums so nobody re-derives them from memory (pitfall §4.1 #2).
Unknown codes are never dropped: `name_for` passes them through.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

BENEFIT_CODES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "1": "Active Coverage",
        "2": "Active - Full Risk Capitation",
        "3": "Active - Services Capitated",
        "4": "Active - Services Capitated to Primary Care Physician",
        "5": "Active - Pending Investigation",
        "6": "Inactive",
        "7": "Inactive - Pending Eligibility Update",
        "8": "Inactive - Pending Investigation",
        "A": "Co-Insurance",
        "B": "Co-Payment",
        "C": "Deductible",
        "CB": "Coverage Basis",
        "D": "Benefit Description",
        "E": "Exclusions",
        "F": "Limitations",
        "G": "Out of Pocket (Stop Loss)",
        "H": "Unlimited",
        "I": "Non-Covered",
        "J": "Cost Containment",
        "K": "Reserve",
        "L": "Primary Care Provider",
        "M": "Pre-existing Condition",
        "MC": "Managed Care Coordinator",
        "N": "Services Restricted to Following Provider",
        "O": "Not Deemed a Medical Necessity",
        "P": "Benefit Disclaimer",
        "Q": "Second Surgical Opinion Required",
        "R": "Other or Additional Payor",
        "S": "Prior Year(s) History",
        "T": "Card(s) Reported Lost/Stolen",
        "U": "Contact Following Entity for Eligibility or Benefit Information",
        "V": "Cannot Process",
        "W": "Other Source of Data",
        "X": "Health Care Facility",
        "Y": "Spend Down",
    }
)
COVERAGE_LEVELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "IND": "Individual",
        "FAM": "Family",
        "EMP": "Employee Only",
        "ESP": "Employee and Spouse",
        "ECH": "Employee and Children",
        "SPC": "Spouse and Children",
        "SPO": "Spouse Only",
        "CHD": "Children Only",
        "DEP": "Dependents Only",
    }
)
TIME_QUALIFIERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "6": "Hour",
        "7": "Day",
        "13": "24 Hours",
        "21": "Years",
        "22": "Service Year",
        "23": "Calendar Year",
        "24": "Year to Date",
        "25": "Contract",
        "26": "Episode",
        "27": "Visit",
        "28": "Outlier",
        "29": "Remaining",
        "30": "Exceeded",
        "31": "Not Exceeded",
        "32": "Lifetime",
        "33": "Lifetime Remaining",
        "34": "Month",
        "35": "Week",
        "36": "Admission",
    }
)
NETWORK_INDICATORS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Y": "Yes",
        "N": "No",
        "U": "Unknown",
        "W": "Not Applicable",
    }
)
INSURANCE_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "12": "Medicare Secondary Working Aged Beneficiary or Spouse with Employer Group Health Plan",
        "13": (
            "Medicare Secondary End-Stage Renal Disease Beneficiary in the Mandated Coordination Period"
            " with an Employer's Group Health Plan"
        ),
        "14": "Medicare Secondary, No-fault Insurance including Auto is Primary",
        "15": "Medicare Secondary Worker's Compensation",
        "16": "Medicare Secondary Public Health Service (PHS)or Other Federal Agency",
        "41": "Medicare Secondary Black Lung",
        "42": "Medicare Secondary Veteran's Administration",
        "43": "Medicare Secondary Disabled Beneficiary Under Age 65 with Large Group Health Plan (LGHP)",
        "47": "Medicare Secondary, Other Liability Insurance is Primary",
        "AP": "Auto Insurance Policy",
        "C1": "Commercial",
        "CO": "Consolidated Omnibus Budget Reconciliation Act (COBRA)",
        "CP": "Medicare Conditionally Primary",
        "D": "Disability",
        "DB": "Disability Benefits",
        "EP": "Exclusive Provider Organization",
        "FF": "Family or Friends",
        "GP": "Group Policy",
        "HM": "Health Maintenance Organization (HMO)",
        "HN": "Health Maintenance Organization (HMO) - Medicare Risk",
        "HS": "Special Low Income Medicare Beneficiary",
        "IN": "Indemnity",
        "IP": "Individual Policy",
        "LC": "Long Term Care",
        "LD": "Long Term Policy",
        "LI": "Life Insurance",
        "LT": "Litigation",
        "MA": "Medicare Part A",
        "MB": "Medicare Part B",
        "MC": "Medicaid",
        "MH": "Medigap Part A",
        "MI": "Medigap Part B",
        "MP": "Medicare Primary",
        "OT": "Other",
        "PE": "Property Insurance - Personal",
        "PL": "Personal",
        "PP": "Personal Payment (Cash - No Insurance)",
        "PR": "Preferred Provider Organization (PPO)",
        "PS": "Point of Service (POS)",
        "QM": "Qualified Medicare Beneficiary",
        "RP": "Property Insurance - Real",
        "SP": "Supplemental Policy",
        "TF": "Tax Equity Fiscal Responsibility Act (TEFRA)",
        "WC": "Workers Compensation",
        "WU": "Wrap Up Policy",
    }
)
SERVICE_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "1": "Medical Care",
        "4": "Diagnostic X-Ray",
        "5": "Diagnostic Lab",
        "30": "Health Benefit Plan Coverage",
        "33": "Chiropractic",
        "35": "Dental Care",
        "42": "Home Health Care",
        "45": "Hospice",
        "47": "Hospital",
        "48": "Hospital - Inpatient",
        "50": "Hospital - Outpatient",
        "51": "Hospital - Emergency Accident",
        "52": "Hospital - Emergency Medical",
        "62": "MRI/CAT Scan",
        "69": "Maternity",
        "73": "Diagnostic Medical",
        "81": "Routine Physical",
        "86": "Emergency Services",
        "88": "Pharmacy",
        "93": "Podiatry",
        "96": "Professional (Physician)",
        "98": "Professional (Physician) Visit - Office",
        "A0": "Professional (Physician) Visit - Outpatient",
        "A4": "Psychiatric",
        "A6": "Psychotherapy",
        "A7": "Psychiatric - Inpatient",
        "A8": "Psychiatric - Outpatient",
        "AD": "Occupational Therapy",
        "AE": "Physical Medicine",
        "AF": "Speech Therapy",
        "AI": "Substance Abuse",
        "AL": "Vision (Optometry)",
        "BY": "Physician Visit - Office: Sick",
        "BZ": "Physician Visit - Office: Well",
        "DM": "Durable Medical Equipment",
        "MH": "Mental Health",
        "PT": "Physical Therapy",
        "UC": "Urgent Care",
    }
)
REQUEST_SERVICE_TYPE_CODES: Final[frozenset[str]] = frozenset(
    (
        "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
        "20", "21", "22", "23", "24", "25", "26", "27", "28", "30", "32", "33", "34", "35", "36", "37", "38",
        "39", "40", "41", "42", "43", "44", "45", "46", "47", "48", "49", "50", "51", "52", "53", "54", "55",
        "56", "57", "58", "59", "60", "61", "62", "63", "64", "65", "66", "67", "68", "69", "70", "71", "72",
        "73", "74", "75", "76", "77", "78", "79", "80", "81", "82", "83", "84", "85", "86", "87", "88", "89",
        "90", "91", "92", "93", "94", "95", "96", "97", "98", "99", "A0", "A1", "A2", "A3", "A4", "A5", "A6",
        "A7", "A8", "A9", "AA", "AB", "AC", "AD", "AE", "AF", "AG", "AH", "AI", "AJ", "AK", "AL", "AM", "AN",
        "AO", "AQ", "AR", "B1", "B2", "B3", "BA", "BB", "BC", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BK",
        "BL", "BM", "BN", "BP", "BQ", "BR", "BS", "BT", "BU", "BV", "BW", "BX", "BY", "BZ", "C1", "CA", "CB",
        "CC", "CD", "CE", "CF", "CG", "CH", "CI", "CJ", "CK", "CL", "CM", "CN", "CO", "CP", "CQ", "DG", "DM",
        "DS", "GF", "GN", "GY", "IC", "MH", "NI", "ON", "PT", "PU", "RN", "RT", "TC", "TN", "UC",
    )
)

FOLLOWUP_ACTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "C": "Please Correct and Resubmit",
        "N": "Resubmission Not Allowed",
        "P": "Please Resubmit Original Transaction",
        "R": "Resubmission Allowed",
        "S": "Do Not Resubmit; Inquiry Initiated to a Third Party",
        "W": "Please Wait 30 Days and Resubmit",
        "X": "Please Wait 10 Days and Resubmit",
        "Y": "Do Not Resubmit; We Will Hold Your Request and Respond Again Shortly",
    }
)

AAA_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "04": "Authorized Quantity Exceeded",
        "15": "Required application data missing",
        "33": "Input Errors",
        "35": "Out of Network",
        "41": "Authorization/Access Restrictions",
        "42": "Unable to Respond at Current Time",
        "43": "Invalid/Missing Provider Identification",
        "44": "Invalid/Missing Provider Name",
        "45": "Invalid/Missing Provider Specialty",
        "46": "Invalid/Missing Provider Phone Number",
        "47": "Invalid/Missing Provider State",
        "48": "Invalid/Missing Referring Provider Identification Number",
        "49": "Provider is Not Primary Care Physician",
        "50": "Provider Ineligible for Inquiries",
        "51": "Provider Not on File",
        "52": "Service Dates Not Within Provider Plan Enrollment",
        "53": "Inquired Benefit Inconsistent with Provider Type",
        "54": "Inappropriate Product/Service ID Qualifier",
        "55": "Inappropriate Product/Service ID",
        "56": "Inappropriate Date",
        "57": "Invalid/Missing Date(s) of Service",
        "58": "Invalid/Missing Date-of-Birth",
        "60": "Date of Birth Follows Date(s) of Service",
        "61": "Date of Death Precedes Date(s) of Service",
        "62": "Date of Service Not Within Allowable Inquiry Period",
        "63": "Date of Service in Future",
        "64": "Invalid/Missing Patient ID",
        "65": "Invalid/Missing Patient Name",
        "66": "Invalid/Missing Patient Gender Code",
        "67": "Patient Not Found",
        "68": "Duplicate Patient ID Number",
        "69": "Inconsistent with Patient's Age",
        "70": "Inconsistent with Patient's Gender",
        "71": "Patient Birth Date Does Not Match That for the Patient on the Database",
        "72": "Invalid/Missing Subscriber/Insured ID",
        "73": "Invalid/Missing Subscriber/Insured Name",
        "74": "Invalid/Missing Subscriber/Insured Gender Code",
        "75": "Subscriber/Insured Not Found",
        "76": "Duplicate Subscriber/Insured ID Number",
        "77": "Subscriber Found, Patient Not Found",
        "78": "Subscriber/Insured Not in Group/Plan Identified",
        "79": "Invalid Participant Identification",
        "80": "No Response received - Transaction Terminated",
        "97": "Invalid or Missing Provider Address",
        "98": "Experimental Service or Procedure",
        "AA": "Authorization Number Not Found",
        "AE": "Requires Primary Care Physician Authorization",
        "AF": "Invalid/Missing Diagnosis Code(s)",
        "AG": "Invalid/Missing Procedure Code(s)",
        "AO": "Additional Patient Condition Information Required",
        "CI": "Certification Information Does Not Match Patient",
        "E8": "Requires Medical Review",
        "IA": "Invalid Authorization Number Format",
        "MA": "Missing Authorization",
        "T4": "Payer Name or Identifier Missing",
    }
)

# EB01 codes that state coverage status rather than a cost share.
ACTIVE_STATUS_CODES: Final[frozenset[str]] = frozenset({"1", "2", "3", "4", "5"})
INACTIVE_STATUS_CODES: Final[frozenset[str]] = frozenset({"6", "7", "8"})
STATUS_CODES: Final[frozenset[str]] = ACTIVE_STATUS_CODES | INACTIVE_STATUS_CODES


def name_for(table: Mapping[str, str], code: str, payer_name: str | None = None) -> str:
    """Our name for `code`; an unknown code keeps the payer's name, else the code itself."""
    known = table.get(code)
    if known is not None:
        return known
    return payer_name if payer_name else code
